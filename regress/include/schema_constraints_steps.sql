-- The steps of schema_constraints.sql, run once per version mode.
CREATE SCHEMA con;
CREATE SCHEMA con_other;
CREATE TABLE con.customers (id int PRIMARY KEY, email text, CONSTRAINT email_has_at CHECK (email LIKE '%@%'));
CREATE TABLE con.orders (id int PRIMARY KEY, customer int REFERENCES con.customers ON DELETE CASCADE,
                         qty int CHECK (qty > 0));
SELECT * FROM pg_temp.members('con', 'customers') UNION ALL SELECT * FROM pg_temp.members('con', 'orders');
SELECT * FROM pg_temp.check_log();
-- renaming the referenced table or column changes the referencing table's description
ALTER TABLE con.customers RENAME TO clients;
ALTER TABLE con.clients RENAME COLUMN id TO client_id;
SELECT * FROM pg_temp.members('con', 'orders');
SELECT * FROM pg_temp.check_log();
-- a foreign key from another schema; constraints added, renamed, dropped
CREATE TABLE con_other.invoices (id int, client int);
ALTER TABLE con_other.invoices ADD CONSTRAINT invoices_client_fk FOREIGN KEY (client) REFERENCES con.clients;
ALTER TABLE con.clients RENAME COLUMN client_id TO cid;
SELECT * FROM pg_temp.members('con_other', 'invoices');
ALTER TABLE con.orders ADD CONSTRAINT qty_small CHECK (qty < 1000) NOT VALID;
ALTER TABLE con.orders RENAME CONSTRAINT qty_small TO qty_below_1000;
ALTER TABLE con.orders DROP CONSTRAINT orders_qty_check;
SELECT * FROM pg_temp.members('con', 'orders');
SELECT * FROM pg_temp.check_log();
-- dropping the referenced table drops the foreign keys (CASCADE)
SET client_min_messages = warning;
DROP TABLE con.clients CASCADE;
RESET client_min_messages;
SELECT * FROM pg_temp.members('con', 'orders') UNION ALL SELECT * FROM pg_temp.members('con_other', 'invoices');
SELECT * FROM pg_temp.check_log();
-- partitions: key, bounds, attach, detach, default partition
CREATE TABLE con.events (id int, at date) PARTITION BY RANGE (at);
CREATE TABLE con.events_2025 PARTITION OF con.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE con.events_rest PARTITION OF con.events DEFAULT;
CREATE TABLE con.events_2026 (id int, at date);
ALTER TABLE con.events ATTACH PARTITION con.events_2026 FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
SELECT t, m.* FROM unnest(ARRAY['events', 'events_2025', 'events_2026', 'events_rest']) AS t,
       LATERAL pg_temp.members('con', t) AS m;
SELECT * FROM pg_temp.check_log();
ALTER TABLE con.events DETACH PARTITION con.events_2025;
ALTER TABLE con.events RENAME TO happenings;
SELECT t, m.* FROM unnest(ARRAY['happenings', 'events_2025', 'events_2026']) AS t,
       LATERAL pg_temp.members('con', t) AS m;
SELECT * FROM pg_temp.check_log();
SET client_min_messages = warning;
DROP SCHEMA con, con_other CASCADE;
RESET client_min_messages;
