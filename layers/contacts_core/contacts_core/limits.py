"""DynamoDB's number limits (Developer Guide, "Supported data types" → Number), in a module
of their own so that the models and the DynamoDB plumbing share them without importing each
other (the authorizer needs the plumbing, not the models).

DynamoDB: at most 38 digits of precision; positive magnitudes from 1E-130 up to
9.9999999999999999999999999999999999999E+125, the same negated, and zero.

The API takes a narrower range, one rule whatever the notation: whole numbers of at most
38 digits (``10**38 - 1``), other numbers zero or of magnitude 1E-130 to below 1E+38. A
double of magnitude 1E+16 or more is always whole, so ``1e50`` is the same whole number as
its 51 digits written out, and both are refused alike (before, ``1e50`` was stored and
``10**50`` was not). Every accepted integer reads back with all its digits.
"""

MAX_INTEGER = 10**38 - 1
MIN_MAGNITUDE = 1e-130
MAX_MAGNITUDE = 1e38  # exclusive: no whole number beyond MAX_INTEGER, however written
