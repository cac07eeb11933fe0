"""HTTP plumbing: the Lambda handler wrapper, RFC 9457 problems, response sizing, cursors."""
