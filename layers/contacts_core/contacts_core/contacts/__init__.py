"""Contacts: the contact model, field changes, upsert/PATCH/bulk/merge operations, export, and
their DynamoDB access (contacts and identity guards)."""
