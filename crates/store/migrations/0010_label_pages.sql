-- Token pages filtered by a label: a range scan in token order over the
-- label's entries, whatever the number of tokens.
CREATE INDEX token_labels_pages ON token_labels (name, value, token_id);
