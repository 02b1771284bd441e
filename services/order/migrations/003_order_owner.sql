-- Who placed each order: the subject (sub) of the customer's access token. The API shows and
-- cancels an order only for that subject, and counts a customer's pending orders by it.
--
-- NULL for the orders placed before the API authenticated its callers: nobody knows who sent
-- them (the customer's name and email in the body were never checked), so no token matches
-- them and no customer can read or cancel them over the API. Their events still flow: they
-- settle, and a placeholder owner would instead hand them all to whoever got that name.
ALTER TABLE orders ADD COLUMN customer_subject TEXT;

-- The open-order quota counts a customer's pending orders at each POST /orders.
CREATE INDEX orders_pending_by_subject ON orders (customer_subject) WHERE status = 'pending';

-- Idempotency keys stored before (subject '') can match no authenticated subject, which is
-- never empty: they expire with IDEMPOTENCY_KEY_TTL like any other.
