-- depends: billing_0004_held_orders

-- A held order keeps what the session said, a quantity below 1 included ("lots" is stored as
-- 0, -5 as 0). When such an order is fully refunded it becomes `refunded` without ever having
-- been provisioned: the quantity and seats checks apply only to orders that were not held.
ALTER TABLE orders DROP CONSTRAINT orders_quantity_check;
ALTER TABLE orders ADD CONSTRAINT orders_quantity_check
    CHECK (quantity >= 1 OR status NOT IN ('paid', 'refunded') OR hold_reason IS NOT NULL);
ALTER TABLE orders DROP CONSTRAINT orders_seats_check;
ALTER TABLE orders ADD CONSTRAINT orders_seats_check
    CHECK (seats >= 1 OR status NOT IN ('paid', 'refunded') OR hold_reason IS NOT NULL);
