"""The screening service: screening results classified by versioned rules, follow-up cases and actions."""
from kit.app import create_app

from screening.api.routes import router

app = create_app("screening", [router], title="MCH screening",
                 description="Screening results (婚检, 孕前优生, 产前筛查, 母婴传播, 新生儿筛查, 两癌, 地贫, 营养包), "
                 "classified by declarative versioned rules, and their follow-up cases (随访).")
