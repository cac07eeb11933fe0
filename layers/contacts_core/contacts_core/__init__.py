"""Contacts domain: models, rules and DynamoDB access shared by every function."""
