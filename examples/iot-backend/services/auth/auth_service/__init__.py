"""Auth service: device MQTT credentials, operator API tokens and the broker's credential feed."""
