DROP TABLE mailboxes;
DROP TABLE conversation_members;
DROP TABLE messages;
DROP TABLE conversations;
