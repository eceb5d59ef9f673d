"""The registry service: persons, institutions, pregnancy episodes and the encounters HIS systems post."""
from kit.app import create_app

from registry.api import fhir, openapi
from registry.api.review_routes import router as review_router
from registry.api.routes import router

app = create_app("registry", [review_router, router, fhir.router], title="MCH registry",
                 description="Person registry (人员), facility register, pregnancy episodes (孕产期保健) "
                 "and encounters.")
openapi.install(app)
