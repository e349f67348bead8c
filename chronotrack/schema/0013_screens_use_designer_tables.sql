-- Finish screens (0010) and the designer's layouts and images (0009) were built side by side;
-- here they meet. A screen's layout and an event's logo are the designer's rows: deleting a
-- layout puts its screens back on the built-in panel, deleting an image drops it as the logo.
-- (Sponsor images are an array of ids; the screens resolve them within the event and skip any
-- that are gone.) Ids that point nowhere today are cleared first, so the constraints can hold.
UPDATE display_screens SET layout_id = NULL
WHERE layout_id IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM display_layouts WHERE display_layouts.id = display_screens.layout_id);
UPDATE event_branding SET logo_image_id = NULL
WHERE logo_image_id IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM event_images WHERE event_images.id = event_branding.logo_image_id);

ALTER TABLE display_screens
    ADD CONSTRAINT display_screens_layout_fk FOREIGN KEY (layout_id)
        REFERENCES display_layouts (id) ON DELETE SET NULL;
ALTER TABLE event_branding
    ADD CONSTRAINT event_branding_logo_fk FOREIGN KEY (logo_image_id)
        REFERENCES event_images (id) ON DELETE SET NULL;
