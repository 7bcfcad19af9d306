-- Sending a message as one statement: one round trip, atomic without BEGIN and COMMIT
-- (hmb.store.messages.send_message). Its two queries keep their own snapshots: a VOLATILE
-- function takes a new one for each query it runs.
-- depends: 0012_create_messages

CREATE FUNCTION send_message(sender bigint, recipient bigint, message_body text)
RETURNS TABLE (id bigint, conversation_id bigint, sender_id bigint, recipient_id bigint, body text,
               created_at timestamptz, sender_prev bigint, recipient_prev bigint)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    low bigint := least(sender, recipient);
    high bigint := greatest(sender, recipient);
    head record;
    sender_head bigint;
    recipient_head bigint;
BEGIN
    -- Both users' mailbox rows are locked, in id order (no deadlocks), before the message id is
    -- drawn: messages then commit in id order within each user's stream, so a reader that has
    -- seen id N and asks for "after N" misses nothing.
    FOR head IN
        INSERT INTO mailboxes (user_id)
        SELECT u.id FROM users u WHERE u.id IN (low, high) ORDER BY u.id
        ON CONFLICT (user_id) DO UPDATE SET user_id = excluded.user_id
        RETURNING mailboxes.user_id, mailboxes.last_message_id
    LOOP
        IF head.user_id = sender THEN sender_head := head.last_message_id; END IF;
        IF head.user_id = recipient THEN recipient_head := head.last_message_id; END IF;
    END LOOP;
    IF recipient_head IS NULL THEN
        RETURN;  -- no such recipient: no row (the sender's mailbox row it may have made is empty)
    END IF;
    -- A second query, so a second snapshot: it sees a conversation committed while we waited
    -- for the locks.
    RETURN QUERY
    WITH found AS (
        SELECT c.id FROM conversations c WHERE c.user_low = low AND c.user_high = high
    ), made AS (
        -- The pair is locked above, so no one else can be creating it now.
        INSERT INTO conversations (user_low, user_high)
        SELECT low, high WHERE NOT EXISTS (SELECT FROM found)
        RETURNING conversations.id
    ), m AS (
        INSERT INTO messages (conversation_id, sender_id, recipient_id, body)
        SELECT c.id, sender, recipient, message_body FROM (SELECT id FROM found UNION ALL SELECT id FROM made) c
        RETURNING messages.id, messages.conversation_id, messages.sender_id, messages.recipient_id,
                  messages.body, messages.created_at
    ), members AS (
        INSERT INTO conversation_members (conversation_id, user_id, peer_id, last_message_id)
        SELECT m.conversation_id, m.sender_id, m.recipient_id, m.id FROM m
        UNION ALL SELECT m.conversation_id, m.recipient_id, m.sender_id, m.id FROM m
        ON CONFLICT (conversation_id, user_id) DO UPDATE SET last_message_id = excluded.last_message_id
    ), boxes AS (
        UPDATE mailboxes SET last_message_id = m.id FROM m WHERE mailboxes.user_id IN (low, high)
    )
    SELECT m.id, m.conversation_id, m.sender_id, m.recipient_id, m.body, m.created_at,
           sender_head, recipient_head
    FROM m;
END
$$;
