"""The certificates service: blank stock, custodians, issuance (出生医学证明), verification, register."""
from kit.app import create_app

from certificates.api.routes import router

app = create_app("certificates", [router], title="MCH certificates",
                 description="Birth-certificate stock ledger (证件库存), custodians (专人管理, 证章分离), "
                 "issue / reissue / replacement / void, verification for public security, issuance register.")
