-- Schema version 10: enrolment at the till. A welcome bonus in kopecks credited to a guest a
-- cashier enrols, and whether cashiers may enrol guests at all (off until the owner allows it).
ALTER TABLE program ADD COLUMN welcome_bonus BIGINT NOT NULL DEFAULT 0 CHECK (welcome_bonus >= 0);
ALTER TABLE program ADD COLUMN till_enrolment BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE programs ADD COLUMN welcome_bonus BIGINT NOT NULL DEFAULT 0 CHECK (welcome_bonus >= 0);
ALTER TABLE programs ADD COLUMN till_enrolment BOOLEAN NOT NULL DEFAULT false;
