"""Run the auth service under uvicorn on $PORT."""

from iot_common.web import serve

from auth_service.settings import Settings

if __name__ == "__main__":
    settings = Settings.from_env()
    serve("auth_service.app:app", settings.host, settings.port, settings.access_log)
