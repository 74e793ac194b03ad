-- 0005: what a channel's rules need to know about an identity: when the customer last wrote
-- from it (WhatsApp's and Messenger's 24-hour windows count from there) and whether they asked
-- not to be written to (SMS/WhatsApp STOP, Twilio error 21610), set until they resume.

ALTER TABLE identities ADD COLUMN last_inbound_at {{real}};
ALTER TABLE identities ADD COLUMN opted_out_at {{real}};

-- Conversations kept the time of the customer's last message before this version: carry it
-- over, so replies on existing WhatsApp and Messenger conversations are not held back.
UPDATE identities SET last_inbound_at = (
    SELECT MAX(c.last_inbound_at) FROM conversations c WHERE c.identity_id = identities.id);
