"""What a display screen looks like: layouts drawn in the designer and the images they use."""
