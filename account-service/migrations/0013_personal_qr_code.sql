-- A personal QR code (protocol.md 8.35): its token names the user and this secret (128 random bits,
-- hex); rotating draws a new secret, which kills every older token at once. NULL: none made yet.
ALTER TABLE users ADD COLUMN qr_secret text NULL;
