"""multicloud provider for AWS ECS Fargate (`aws-ecs`) and its moto-based emulator (`aws`).

Importing this package imports neither boto3 nor moto: the SDK is loaded by
`multicloud_aws.clients` on first use, moto by `multicloud_aws.emulator` on start.
"""

__all__: list[str] = []
