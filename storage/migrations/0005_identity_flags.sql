-- 0005: what a channel's rules need to know about an identity: when the customer last wrote
-- from it (WhatsApp's and Messenger's 24-hour windows count from there) and whether they asked
-- not to be written to (SMS/WhatsApp STOP, Twilio error 21610), set until they resume.

ALTER TABLE identities ADD COLUMN last_inbound_at {{real}};
ALTER TABLE identities ADD COLUMN opted_out_at {{real}};
