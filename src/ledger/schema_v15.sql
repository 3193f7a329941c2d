-- Schema version 15: a guest's identifiers found by the guest. The guest page, a contact edit
-- (which replaces the phone) and the guests' export read or change a guest's identifiers by
-- guest id; without this index each of them scans every identifier of the organisation, which
-- at a million guests is two million rows per page view.
CREATE INDEX identifiers_by_guest ON identifiers (guest_id);
