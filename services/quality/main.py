"""The quality service: rules as data on the other services' records, queries back to the reporting institution,
and quality scores per institution and month."""
from kit.app import create_app

from quality.api.routes import router

app = create_app("quality", [router], title="MCH data quality",
                 description="Data quality (质控): versioned rules evaluated live on the records of the registry, "
                 "certificates and screening; each finding a query (质疑) to the institution that posted the record; "
                 "timeliness, completeness and validity scores.")
