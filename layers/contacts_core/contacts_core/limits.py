"""DynamoDB's number limits (Developer Guide, "Supported data types" → Number), in a module
of their own so that the models and the DynamoDB plumbing share them without importing each
other (the authorizer needs the plumbing, not the models).

At most 38 digits of precision; positive magnitudes from 1E-130 up to
9.9999999999999999999999999999999999999E+125, the same negated, and zero. Integers are held
to 38 digits; a float (at most 17 digits) to the magnitudes.
"""

MAX_INTEGER = 10**38 - 1
MIN_MAGNITUDE = 1e-130
MAX_MAGNITUDE = 1e126  # exclusive
