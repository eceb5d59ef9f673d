"""The data-quality service (质控): rules as data evaluated live on the other services' events, each finding a
query (质疑) back to the institution that posted the record, and quality scores per institution and month."""
