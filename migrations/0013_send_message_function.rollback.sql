DROP FUNCTION send_message(bigint, bigint, text);
