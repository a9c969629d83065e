"""Pure domain: Batch shapes, validation with actionable messages, state rules. No boto3."""
