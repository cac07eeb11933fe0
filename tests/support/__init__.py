"""Test support: the invariant checker, DynamoDB call hooks (pause/crash), stream replay."""
