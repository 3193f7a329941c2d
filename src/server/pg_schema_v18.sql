-- Schema version 18: a check's lines, kept with its payment so that a return can name lines.
-- JSON of the lines (name, quantity, price in kopecks, units returned so far); NULL when the
-- till sent none (such a check is returned by amount). A return by lines records the units it
-- gave back.
ALTER TABLE payments ADD COLUMN lines TEXT;
ALTER TABLE refunds ADD COLUMN lines TEXT;
