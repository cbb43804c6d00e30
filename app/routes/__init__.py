"""The API's routers, one per resource, included by the app factory."""

from app.routes.audit import router as audit
from app.routes.data import router as data
from app.routes.health import router as health
from app.routes.models import router as models
from app.routes.quotes import router as quotes
from app.routes.usage import router as usage

ROUTERS = (health, quotes, data, audit, models, usage)
