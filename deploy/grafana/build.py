"""Writes the provisioned Grafana dashboards (deploy/grafana/dashboards/*.json) from the indicator catalogue.

    python deploy/grafana/build.py

PostgreSQL panels read the indicators database's `counter(period, region, institution, code, part, n)`:
value = n of part 'n' ÷ n of part 'd' × factor, factor and unit embedded from the catalogue. Every dashboard has
the template variables `region` (any prefix level, drillable one level down from the table panels) and `period`.
Prometheus panels use the metric names of services/kit/metrics.py and services/indicators/headline.py.
The JSON files are committed; re-run this after a catalogue change.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from quality_dashboard import quality  # deploy/grafana/quality_dashboard.py: run as a script, its folder is on the path

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent / "dashboards"
CATALOGUE = ROOT / "services" / "indicators" / "catalogue" / "v1.json"
PG = {"type": "grafana-postgresql-datasource", "uid": "mch-postgres"}
PROM = {"type": "prometheus", "uid": "mch-prometheus"}

#: indicators of indicators.md that a catalogue may not carry yet: (name_zh, unit, factor)
SPEC_CODES: dict[str, tuple[str, str, int]] = {
    "high_risk_management_rate": ("高危产妇管理率", "%", 100),
    "hiv_test_rate": ("孕产妇艾滋病检测率", "%", 100), "syphilis_test_rate": ("孕产妇梅毒检测率", "%", 100),
    "hbsag_test_rate": ("孕产妇乙肝检测率", "%", 100), "hbig_rate": ("乙肝免疫球蛋白注射率", "%", 100),
    "prenatal_screening_rate": ("产前筛查率", "%", 100), "booked_screening_rate": ("建册孕妇筛查率", "%", 100),
    "prenatal_high_risk_followup_rate": ("高风险咨询随访率", "%", 100),
    "metabolic_screening_rate": ("新生儿遗传代谢病筛查率", "%", 100),
    "hearing_screening_rate": ("新生儿听力筛查率", "%", 100),
    "premarital_exam_persons": ("婚检人数", "count", 1), "premarital_exam_couples": ("婚检对数", "count", 1),
    "premarital_exam_rate": ("婚前医学检查率", "%", 100), "premarital_disease_rate": ("婚检疾病检出率", "%", 100),
    "premarital_hiv_test_rate": ("婚前保健HIV检测率", "%", 100),
    "prepregnancy_exam_count": ("孕前优生检查人数", "count", 1), "prepregnancy_risk_rate": ("风险人群比例", "%", 100),
    "cervical_screening_count": ("宫颈癌检查人数", "count", 1),
    "breast_screening_count": ("乳腺癌检查人数", "count", 1),
    "cervical_abnormal_rate": ("宫颈癌筛查异常检出率", "%", 100),
    "breast_abnormal_rate": ("乳腺癌筛查异常检出率", "%", 100),
    "thalassaemia_screening_count": ("地贫筛查对数", "count", 1), "followup_completion_rate": ("随访完成率", "%", 100),
    "certs_issued": ("出生医学证明签发总数", "count", 1), "certs_first": ("首次签发", "count", 1),
    "certs_first_out_of_institution": ("机构外首签", "count", 1), "certs_reissued": ("补发", "count", 1),
    "certs_replaced": ("换发", "count", 1), "certs_voided": ("废证数", "count", 1),
    "certs_superseded": ("收回/失效", "count", 1), "cert_void_rate": ("废证率", "%", 100),
    "cert_stock_closing": ("期末库存", "count", 1), "cert_first_issue_rate": ("首次签发率", "%", 100),
}

DASHBOARDS: dict[str, dict[str, Any]] = {
    "maternal": {"title": "孕产妇保健 Maternal health", "stats": [
        "live_births", "women_delivered", "early_booking_rate", "systematic_management_rate", "hospital_delivery_rate",
        "caesarean_rate", "high_risk_share", "maternal_mortality_ratio"],
        "trend": ["live_births", "caesarean_rate", "early_booking_rate"],
        "table": ["live_births", "early_booking_rate", "antenatal_check_rate", "antenatal_5plus_rate",
                  "systematic_management_rate", "postpartum_visit_rate", "hospital_delivery_rate", "caesarean_rate",
                  "high_risk_share", "high_risk_management_rate"]},
    "child": {"title": "儿童保健 Child health", "stats": [
        "newborn_visit_rate", "low_birth_weight_rate", "neonatal_mortality_rate", "infant_mortality_rate",
        "under5_mortality_rate", "under3_systematic_management_rate", "under7_health_management_rate",
        "exclusive_breastfeeding_rate"],
        "trend": ["newborn_visit_rate", "low_birth_weight_rate"],
        "table": ["newborn_visit_rate", "low_birth_weight_rate", "under3_systematic_management_rate",
                  "under7_health_management_rate", "under5_underweight_rate", "under5_stunting_rate",
                  "under5_wasting_rate", "under5_overweight_rate", "under5_anaemia_rate"]},
    "women": {"title": "妇女保健与婚前保健 Women's programmes", "stats": [
        "premarital_exam_couples", "premarital_exam_rate", "premarital_disease_rate", "premarital_hiv_test_rate",
        "folic_acid_uptake_rate", "cervical_screening_count", "breast_screening_count",
        "marriage_registrations_persons"],
        "trend": ["premarital_exam_persons", "folic_acid_uptake_rate"],
        "table": ["premarital_exam_couples", "premarital_exam_rate", "folic_acid_uptake_rate",
                  "cervical_screening_count", "cervical_abnormal_rate", "breast_screening_count",
                  "breast_abnormal_rate", "prepregnancy_exam_count", "prepregnancy_risk_rate",
                  "thalassaemia_screening_count"]},
    "screening": {"title": "筛查与随访 Screening follow-up", "stats": [
        "prenatal_screening_rate", "booked_screening_rate", "prenatal_high_risk_followup_rate",
        "metabolic_screening_rate", "hearing_screening_rate", "hbig_rate", "syphilis_test_rate",
        "followup_completion_rate"],
        "trend": ["prenatal_screening_rate", "followup_completion_rate"],
        "table": ["prenatal_screening_rate", "hiv_test_rate", "syphilis_test_rate", "hbsag_test_rate",
                  "metabolic_screening_rate", "hearing_screening_rate", "followup_completion_rate"]},
    # issue 21, programmes (docs/indicators-programmes.md)
    "programmes": {"title": "妇幼健康项目 Programmes", "stats": [
        "nutrition_pack_children", "folic_acid_persons", "birth_defect_rate", "maternal_near_miss_ratio",
        "pregnancy_terminations", "neonatal_tetanus_rate", "at_risk_children_managed", "nursery_staff_checked"],
        "trend": ["nutrition_pack_packs", "folic_acid_bottles", "birth_defects"],
        "table": ["folic_acid_persons", "folic_acid_bottles", "nutrition_pack_children", "nutrition_pack_packs",
                  "pregnancy_terminations", "induced_abortions", "mid_term_inductions",
                  "terminations_for_birth_defect", "maternal_near_miss_cases", "maternal_near_miss_ratio",
                  "maternal_deaths", "maternal_death_review_rate", "maternal_death_avoidable_share",
                  "under5_deaths", "under5_death_review_rate", "under5_death_avoidable_share", "birth_defects",
                  "birth_defect_rate", "birth_defects_chd", "birth_defects_ntd", "birth_defects_cleft",
                  "birth_defects_polydactyly", "birth_defects_down_syndrome", "neonatal_tetanus_cases",
                  "neonatal_tetanus_rate", "at_risk_children_enrolled", "at_risk_children_managed",
                  "at_risk_recovery_rate", "nursery_children_checked", "nursery_staff_checked",
                  "nursery_staff_abnormal_rate"]},
    "certificates": {"title": "出生医学证明 Birth certificates", "stats": [
        "certs_issued", "certs_first", "certs_reissued", "certs_replaced", "certs_voided", "cert_void_rate",
        "cert_stock_closing", "cert_first_issue_rate"],
        "trend": ["certs_issued", "certs_voided"],
        "table": ["certs_issued", "certs_first", "certs_first_out_of_institution", "certs_reissued",
                  "certs_replaced", "certs_voided", "certs_superseded", "cert_first_issue_rate"]},
    "births": {"title": "出生、性别比与人口基数 Births, sex ratio, populations", "stats": [
        "birth_rate", "sex_ratio_at_birth", "sex_ratio_second_plus", "general_fertility_rate", "live_births_male",
        "live_births_female", "live_births_hukou_province", "population_total"],
        "trend": ["sex_ratio_at_birth", "birth_rate"],
        "table": ["pregnancies_booked", "first_antenatal_care", "hospital_delivery_women", "folic_acid_booked_persons",
                  "hearing_screened_count", "metabolic_screened_count", "live_births_second_plus",
                  "live_births_hukou_county", "live_births_hukou_other", "population_women_15_49",
                  "population_women_35_64", "cervical_screening_coverage", "breast_screening_coverage"]},
    "pmtct": {"title": "预防艾滋病、梅毒和乙肝母婴传播 PMTCT", "stats": [
        "hiv_positive_rate", "syphilis_positive_rate", "hbsag_positive_rate", "hiv_arv_rate",
        "syphilis_treatment_rate", "hepb_dose1_timely_rate", "hbig_rate", "syphilis_exposed_infant_prophylaxis_rate"],
        "trend": ["syphilis_positive_rate", "hbsag_positive_rate"],
        "table": ["hiv_tested_in_pregnancy", "hiv_tested_labour_only", "syphilis_tested_in_pregnancy",
                  "syphilis_tested_labour_only", "hbsag_tested_in_pregnancy", "hbsag_tested_labour_only",
                  "hiv_positive_women", "syphilis_positive_women", "hbsag_positive_women", "hbsag_exposed_live_births",
                  "syphilis_positive_terminations", "hiv_positive_terminations",
                  "hiv_exposed_infant_arv_rate", "hiv_exposed_infant_test_rate", "syphilis_exposed_infant_test_rate",
                  "premarital_syphilis_positive", "premarital_hiv_positive", "premarital_hbsag_positive",
                  "premarital_hbsag_positive_rate", "premarital_exam_male", "premarital_exam_female",
                  "prepregnancy_syphilis_positive", "prepregnancy_hiv_positive", "prepregnancy_hbsag_positive",
                  "prepregnancy_hbsag_positive_rate", "prepregnancy_exam_male", "prepregnancy_exam_female"]},
}

#: variables read the month-grain `tally` (the `counter` view sums it per reporting period: right for panels,
#: too much work for a list of every region or period)
REGION_VAR = "select distinct region from tally where institution = '' and length(region) in (6, 9, 12) " \
             "order by 1"
PERIOD_VAR = "select k.period from period_key k " \
             "where k.period ~ '^[0-9]{4}((SY|H[12]|Q[1-4])?|(-01|SY)[.][.][0-9]{2})$' " \
             "and exists (select 1 from tally t where t.period = k.stored) group by 1 order by 1 desc"
NEXT_LEVEL = "case length('$region') when 2 then 4 when 4 then 6 when 6 then 9 else 12 end"


def meta() -> dict[str, tuple[str, str, int]]:
    doc = json.loads(CATALOGUE.read_text(encoding="utf-8"))
    out = dict(SPEC_CODES)
    for i in doc["indicators"]:
        out[i["code"]] = (i["name_zh"], i["unit"], int(i.get("factor", 1)))
    return out


def value_sql(code: str, m: tuple[str, str, int]) -> str:
    """The indicator's value over the selected rows: NULL when there is no data (the panel shows 'No data')."""
    if m[1] == "count":
        return "sum(n) filter (where part = 'n')"
    return (f"round(coalesce(sum(n) filter (where part = 'n'), 0) * {m[2]}.0 "
            f"/ nullif(sum(n) filter (where part = 'd'), 0), 2)")


def unit(m: tuple[str, str, int]) -> str:
    return {"%": "percent", "count": "none"}.get(m[1], "none")


#: rates where less is better: their target is a ceiling (<=), green below it
LOWER_IS_BETTER = {"caesarean_rate", "maternal_mortality_ratio", "high_risk_share", "low_birth_weight_rate",
                   "neonatal_mortality_rate", "infant_mortality_rate", "under5_mortality_rate",
                   "under5_underweight_rate", "under5_stunting_rate", "under5_wasting_rate", "under5_overweight_rate",
                   "under5_anaemia_rate", "cert_void_rate", "premarital_disease_rate", "cervical_abnormal_rate",
                   "breast_abnormal_rate",
                   # programmes (issue 21)
                   "maternal_near_miss_ratio", "maternal_death_avoidable_share", "under5_death_avoidable_share",
                   "birth_defect_rate", "neonatal_tetanus_rate", "nursery_staff_abnormal_rate"}


def target_sql(code: str, lower: bool) -> str:
    """The region's target of the period's year as two thresholds (indicators.domain.targets: amber within 5 % of
    a rate target, 10 % of a count task): Grafana's "config from query results" turns them into the stat's
    red / amber / green steps."""
    margin = "0.05" if code not in COUNT_CODES else "0.10"
    t1, t2 = ("target", f"target * (1 + {margin})") if lower else (f"target * (1 - {margin})", "target")
    return (f"select {t1} as \"t1\", {t2} as \"t2\" from target where code = '{code}' and region = '$region' "
            f"and year = left('$period', 4)::int")


COUNT_CODES: set[str] = set()


def stat(code: str, m: tuple[str, str, int], x: int, y: int) -> dict[str, Any]:
    sql = (f"select {value_sql(code, m)} as value from counter where code = '{code}' "
           f"and region = '$region' and period = '$period' and institution = ''")
    lower = code in LOWER_IS_BETTER
    colours = ["green", "orange", "red"] if lower else ["red", "orange", "green"]
    return {"type": "stat", "title": m[0], "description": f"{code} ({m[1]}); 颜色按目标值（任务数）：红 / 黄 / 绿",
            "datasource": PG, "gridPos": {"x": x, "y": y, "w": 6, "h": 4},
            "fieldConfig": {"defaults": {"unit": unit(m), "decimals": 0 if m[1] == "count" else 2,
                                         "thresholds": {"mode": "absolute", "steps": [
                                             {"color": "text", "value": None}]},
                                         **({"custom": {}} if m[1] == "count" else {})}, "overrides": []},
            "options": {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "value", "graphMode": "none"},
            "transformations": [{"id": "configFromData", "options": {"configRefId": "B", "mappings": [
                {"fieldName": f, "handlerKey": "threshold1", "handlerArguments": {"threshold": {"color": c}}}
                for f, c in (("t1", colours[1]), ("t2", colours[2]))]}}],
            "targets": [{"refId": "A", "datasource": PG, "format": "table", "rawQuery": True, "editorMode": "code",
                         "rawSql": sql},
                        {"refId": "B", "datasource": PG, "format": "table", "rawQuery": True, "editorMode": "code",
                         "rawSql": target_sql(code, lower)}],
            "_base_colour": colours[0]}


def trend(code: str, m: tuple[str, str, int], x: int, y: int) -> dict[str, Any]:
    sql = (f"select to_timestamp(period || '-01', 'YYYY-MM-DD') as time, {value_sql(code, m)} as \"{m[0]}\" "
           f"from counter where code = '{code}' and region = '$region' and institution = '' "
           f"and period like left('$period', 4) || '-__' group by period order by 1")
    return {"type": "timeseries", "title": f"{m[0]}（按月）", "datasource": PG,
            "gridPos": {"x": x, "y": y, "w": 12, "h": 8},
            "fieldConfig": {"defaults": {"unit": unit(m)}, "overrides": []},
            "targets": [{"refId": "A", "datasource": PG, "format": "time_series", "rawQuery": True,
                         "editorMode": "code", "rawSql": sql}]}


def table(uid: str, codes: list[str], metas: dict[str, tuple[str, str, int]], y: int) -> dict[str, Any]:
    def column(c: str) -> str:
        one = value_sql(c, metas[c]).replace("sum(n) filter (where ", f"sum(n) filter (where code = {c!r} and ")
        return f'{one} as "{metas[c][0]}"'

    cols = ", ".join(column(c) for c in codes)
    sql = (f"select region as \"地区\", (select name from region_name where code = region) as \"名称\", {cols} "
           f"from counter where code in ({', '.join(repr(c) for c in codes)}) "
           f"and region like '$region%' and length(region) = {NEXT_LEVEL} and period = '$period' "
           f"and institution = '' group by region order by region")
    link = {"title": "下钻 drill down", "url": f"/d/mch-{uid}?var-region=${{__data.fields[\"地区\"]}}"
                                                 f"&var-period=${{period}}"}
    return {"type": "table", "title": "下一级地区 By region one level down (click a region to drill down)",
            "datasource": PG, "gridPos": {"x": 0, "y": y, "w": 24, "h": 10},
            "fieldConfig": {"defaults": {"links": [link]}, "overrides": []},
            "targets": [{"refId": "A", "datasource": PG, "format": "table", "rawQuery": True, "editorMode": "code",
                         "rawSql": sql}]}


def variables() -> list[dict[str, Any]]:
    return [
        {"name": "region", "label": "地区 region", "type": "query", "datasource": PG, "query": REGION_VAR,
         "definition": REGION_VAR, "refresh": 2, "sort": 0, "includeAll": False, "multi": False},
        {"name": "period", "label": "期间 period", "type": "query", "datasource": PG, "query": PERIOD_VAR,
         "definition": PERIOD_VAR, "refresh": 2, "sort": 0, "includeAll": False, "multi": False},
    ]


#: 快报 / 终报: the period's values are final once it has ended and the 28-day visit windows have closed
#: (indicators.domain.provisional: the longest look-ahead of the catalogue)
STATUS_SQL = ("select case when (to_date(last_month || '-01', 'YYYY-MM-DD') + interval '1 month' + interval '28 days')"
              " <= (now() at time zone 'Asia/Shanghai') then '终报 final' "
              "else '快报 provisional：随访窗口未满，数据仍会变化' end as \"数据状态\" "
              "from period_end where period = '$period'")


def status_panel(y: int) -> dict[str, Any]:
    return {"type": "stat", "title": "数据状态 Final or provisional", "datasource": PG,
            "gridPos": {"x": 0, "y": y, "w": 24, "h": 3},
            "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "/.*/"}, "colorMode": "none",
                        "graphMode": "none", "textMode": "value"},
            "targets": [{"refId": "A", "datasource": PG, "format": "table", "rawQuery": True, "editorMode": "code",
                         "rawSql": STATUS_SQL}]}


#: open follow-up cases past their due date, by region one level down (the indicators' copy of screening's cases)
OVERDUE_SQL = ("select left(body->>'region_code', {NEXT_LEVEL}) as \"地区\", "
               "(select name from region_name where code = left(f.body->>'region_code', {NEXT_LEVEL})) as \"名称\", "
               "count(*) as \"逾期未随访\", min(body->>'due_on') as \"最早应随访日期\" "
               "from fact f where record_key like 'followup:%' and body->>'status' = 'open' "
               "and body->>'due_on' < to_char(now() at time zone 'Asia/Shanghai', 'YYYY-MM-DD') "
               "and body->>'region_code' like '$region%' group by 1, 2 order by 3 desc").replace(
    "{NEXT_LEVEL}", NEXT_LEVEL)


def overdue_panel(y: int) -> dict[str, Any]:
    return {"type": "table", "title": "逾期未随访 Overdue follow-up cases", "datasource": PG,
            "gridPos": {"x": 0, "y": y, "w": 24, "h": 8},
            "targets": [{"refId": "A", "datasource": PG, "format": "table", "rawQuery": True, "editorMode": "code",
                         "rawSql": OVERDUE_SQL}]}


def dashboard(uid: str, spec: dict[str, Any], metas: dict[str, tuple[str, str, int]]) -> dict[str, Any]:
    panels: list[dict[str, Any]] = [status_panel(0)]
    for i, code in enumerate(spec["stats"]):
        panels.append(stat(code, metas[code], (i % 4) * 6, 3 + (i // 4) * 4))
    y = 3 + 4 * ((len(spec["stats"]) + 3) // 4)
    for i, code in enumerate(spec["trend"][:2]):
        panels.append(trend(code, metas[code], i * 12, y))
    panels.append(table(uid, spec["table"], metas, y + 8))
    if uid == "screening":
        panels.append(overdue_panel(y + 18))
    for p in panels:  # the base colour of a stat without a target, red/green below its first threshold with one
        base = p.pop("_base_colour", None)
        if base:
            p["fieldConfig"]["defaults"]["thresholds"]["steps"][0]["color"] = base
    for n, p in enumerate(panels, 1):
        p["id"] = n
    return {"uid": f"mch-{uid}", "title": spec["title"], "tags": ["mch"], "timezone": "Asia/Shanghai",
            "schemaVersion": 39, "version": 1, "refresh": "30s", "time": {"from": "now-2y", "to": "now"},
            "templating": {"list": variables()}, "panels": panels,
            "links": [{"type": "dashboards", "tags": ["mch"], "asDropdown": True, "title": "MCH"}]}


def pipeline() -> dict[str, Any]:
    """Pipeline health (Prometheus): HTTP traffic and errors, relay backlog, consumer lag and throughput, and the
    live headline gauges of the indicators service."""
    q: list[tuple[str, str, str, str]] = [
        ("各服务请求数/秒 HTTP requests/s by service",
         "sum by (service) (rate(mch_http_requests_total[1m]))", "reqps", "{{service}}"),
        ("服务端错误/秒 HTTP 5xx/s",
         "sum by (service) (rate(mch_http_requests_total{status=~\"5..\"}[1m])) or vector(0)", "reqps",
         "{{service}}"),
        ("响应时间 p95 latency",
         "histogram_quantile(0.95, sum by (le, service) (rate(mch_http_request_seconds_bucket[5m])))",
         "s", "{{service}}"),
        ("事件发布/秒 Events published/s",
         "sum by (topic) (rate(mch_events_published_total[1m]))", "ops", "{{topic}}"),
        ("待发事件 Relay backlog (outbox rows not yet acknowledged)",
         "max by (service) (mch_relay_backlog)", "none",
         "{{service}}"),
        ("消费积压 Consumer lag (records)",
         "sum by (consumer, topic) (mch_consumer_lag)", "none", "{{consumer}} {{topic}}"),
        ("事件处理/秒 Events applied/s",
         "sum by (consumer) (rate(mch_events_consumed_total[1m]))", "ops", "{{consumer}}"),
        ("死信 Dead letters",
         "sum by (consumer) (mch_consumer_dead_letters_total) or vector(0)", "none", "{{consumer}}"),
        ("活产数（实时） Live births now",
         "mch_indicator_value{code=\"live_births\", region=\"$region\"}", "none",
         "{{period}}"),
        ("剖宫产率（实时） Caesarean rate now",
         "mch_indicator_value{code=\"caesarean_rate\", region=\"$region\"}",
         "percent", "{{period}}"),
    ]
    panels = []
    for i, (title, expr, u, legend) in enumerate(q):
        panels.append({"id": i + 1, "type": "timeseries", "title": title, "datasource": PROM,
                       "gridPos": {"x": (i % 2) * 12, "y": (i // 2) * 8, "w": 12, "h": 8},
                       "fieldConfig": {"defaults": {"unit": u}, "overrides": []},
                       "targets": [{"refId": "A", "datasource": PROM, "expr": expr, "legendFormat": legend}]})
    region_var = {"name": "region", "label": "地区 region", "type": "query", "datasource": PROM,
                  "query": {"query": "label_values(mch_indicator_value, region)", "refId": "R"},
                  "definition": "label_values(mch_indicator_value, region)", "refresh": 2}
    return {"uid": "mch-pipeline", "title": "数据管道 Pipeline health", "tags": ["mch"], "timezone": "Asia/Shanghai",
            "schemaVersion": 39, "version": 1, "refresh": "10s", "time": {"from": "now-1h", "to": "now"},
            "templating": {"list": [region_var]}, "panels": panels,
            "links": [{"type": "dashboards", "tags": ["mch"], "asDropdown": True, "title": "MCH"}]}


FILINGS_SQL = ("select f.unit as \"单位代码\", (select name from region_name where code = f.unit) as \"单位名称\", "
               "case f.state when 'submitted' then '已上报' when 'approved' then '已审核（锁定）' else '已退回' end "
               "as \"状态\", f.submitted_by_name as \"上报人\", "
               "(select min(s.at) from filing_step s where s.report = f.report and s.period = f.period "
               "and s.unit = f.unit and s.action = 'submit') as \"首次上报\", f.approved_by_name as \"审核人\", "
               "f.approved_at as \"审核时间\" from filing f where f.report = 'annual' and f.period = '$period' "
               "and f.unit like '$region%' order by f.unit")
COMPLETENESS_SQL = ("select count(*) filter (where state in ('submitted', 'approved', 'returned')) as \"已上报单位\", "
                    "count(*) filter (where state = 'approved') as \"已审核单位\" from filing "
                    "where report = 'annual' and period = '$period' and unit like '$region%' and unit <> '$region'")


def filings() -> dict[str, Any]:
    """上报与审核: the filings of the period under a region — who filed, who approved, when — and their counts."""
    panels = [
        {"id": 1, "type": "stat", "title": "上报与审核单位数 Units filed / approved", "datasource": PG,
         "gridPos": {"x": 0, "y": 0, "w": 24, "h": 4},
         "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "/.*/"}, "colorMode": "value",
                     "graphMode": "none"},
         "targets": [{"refId": "A", "datasource": PG, "format": "table", "rawQuery": True, "editorMode": "code",
                      "rawSql": COMPLETENESS_SQL}]},
        {"id": 2, "type": "table", "title": "上报审核明细 Filings (click a unit for the units below it)",
         "datasource": PG, "gridPos": {"x": 0, "y": 4, "w": 24, "h": 12},
         "fieldConfig": {"defaults": {"links": [{"title": "下钻 drill down", "url": "/d/mch-filings?var-region="
                                                 "${__data.fields[\"单位代码\"]}&var-period=${period}"}]},
                         "overrides": []},
         "targets": [{"refId": "A", "datasource": PG, "format": "table", "rawQuery": True, "editorMode": "code",
                      "rawSql": FILINGS_SQL}]},
    ]
    return {"uid": "mch-filings", "title": "统计报表上报审核 Filings", "tags": ["mch"], "timezone": "Asia/Shanghai",
            "schemaVersion": 39, "version": 1, "refresh": "1m", "time": {"from": "now-2y", "to": "now"},
            "templating": {"list": variables()}, "panels": panels,
            "links": [{"type": "dashboards", "tags": ["mch"], "asDropdown": True, "title": "MCH"}]}


def main() -> None:
    metas = meta()
    COUNT_CODES.update(c for c, m in metas.items() if m[1] == "count")
    OUT.mkdir(parents=True, exist_ok=True)
    for uid, spec in DASHBOARDS.items():
        (OUT / f"{uid}.json").write_text(json.dumps(dashboard(uid, spec, metas), ensure_ascii=False, indent=1) + "\n",
                                         encoding="utf-8")
    (OUT / "pipeline.json").write_text(json.dumps(pipeline(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    (OUT / "filings.json").write_text(json.dumps(filings(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    (OUT / "quality.json").write_text(json.dumps(quality(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(DASHBOARDS) + 3} dashboards to {OUT}")


if __name__ == "__main__":
    main()
