"""Device simulator library: a registry API client and MQTT devices that publish telemetry."""
