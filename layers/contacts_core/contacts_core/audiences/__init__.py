"""Audiences and memberships: models, operations and their DynamoDB access."""
