"""Contacts domain: models, rules and DynamoDB access shared by every function.

Imported first by every function's handler module, so it starts the cold start's pause of
cyclic garbage collection (:mod:`contacts_core.runtime`).
"""

from contacts_core.runtime import pause_collection

pause_collection()
