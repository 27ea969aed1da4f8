"""Run the auth service under uvicorn on $PORT."""

import uvicorn

from auth_service.settings import Settings

if __name__ == "__main__":
    settings = Settings.from_env()
    uvicorn.run(
        "auth_service.app:app",
        host=settings.host,
        port=settings.port,
        access_log=settings.access_log,
        log_level="info",
        loop="uvloop",
    )
