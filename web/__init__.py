"""The race display web layer: Klein pages, JSON feeds and the live event stream."""
