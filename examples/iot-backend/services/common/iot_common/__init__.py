"""What the IoT backend services share: secrets from the environment, migrations, broker URLs, health probes."""
