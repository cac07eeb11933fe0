"""Docker-free local stack: DynamoDB Local, tables from template.yaml, SAM CLI local API Gateway."""
