"""The data-quality dashboard (数据质控): open and escalated queries, and the ranking of institutions and townships
by validity (open queries per 100 records) and timeliness, read from the quality service's own database
(datasource `mch-quality`, a read-only role on `<prefix>quality`)."""
from __future__ import annotations

from typing import Any

QPG = {"type": "grafana-postgresql-datasource", "uid": "mch-quality"}

REGION_VAR = ("select distinct left(region_code, n) as __text from known_institution, "
              "(values (6), (4), (2)) as l(n) order by 1")
PERIOD_VAR = "select distinct period as __text from quality_query where period <> '' order by 1 desc"

#: the records of a month (clinical date) per institution and those posted within 7 days
_RECORDS = ("with recs as (select institution_code, posted_on - occurred_on as lag from rec_encounter "
            "where not voided and to_char(occurred_on, 'YYYY-MM') = '$period' union all "
            "select institution_code, posted_on - booked_on from rec_pregnancy "
            "where not voided and to_char(booked_on, 'YYYY-MM') = '$period'), "
            "r as (select institution_code, count(*) as n, count(*) filter (where lag <= 7) as timely "
            "from recs group by 1), "
            "q as (select institution_code, count(*) filter (where status in ('open', 'answered')) as open_q, "
            "count(*) filter (where status = 'open' and due_on < (now() at time zone 'Asia/Shanghai')::date) "
            "as overdue from quality_query where period = '$period' group by 1) ")

BY_INSTITUTION_SQL = (_RECORDS + "select i.code as \"机构代码\", i.name as \"机构\", "
                      "left(i.region_code, 9) as \"乡镇\", "
                      "coalesce(r.n, 0) as \"记录数\", coalesce(q.open_q, 0) as \"未结质疑\", "
                      "coalesce(q.overdue, 0) as \"逾期\", "
                      "round(coalesce(q.open_q, 0) * 100.0 / nullif(r.n, 0), 2) as \"每百条质疑\", "
                      "round(r.timely * 100.0 / nullif(r.n, 0), 2) as \"及时率%\" "
                      "from known_institution i left join r on r.institution_code = i.code "
                      "left join q on q.institution_code = i.code where i.region_code like '$region%' "
                      "and (r.n > 0 or q.open_q > 0) order by 7 desc nulls last, 1")

BY_TOWNSHIP_SQL = (_RECORDS + "select left(i.region_code, 9) as \"乡镇\", sum(coalesce(r.n, 0)) as \"记录数\", "
                   "sum(coalesce(q.open_q, 0)) as \"未结质疑\", "
                   "round(sum(coalesce(q.open_q, 0)) * 100.0 / nullif(sum(r.n), 0), 2) as \"每百条质疑\", "
                   "round(sum(r.timely) * 100.0 / nullif(sum(r.n), 0), 2) as \"及时率%\" "
                   "from known_institution i left join r on r.institution_code = i.code "
                   "left join q on q.institution_code = i.code where i.region_code like '$region%' "
                   "group by 1 having sum(coalesce(r.n, 0)) > 0 or sum(coalesce(q.open_q, 0)) > 0 order by 4 desc "
                   "nulls last, 1")

BY_RULE_SQL = ("select q.rule_id as \"规则\", count(*) filter (where q.status = 'open') as \"待处理\", "
               "count(*) filter (where q.status = 'answered') as \"已答复\", "
               "count(*) filter (where q.status = 'corrected') as \"已更正\" "
               "from quality_query q join known_institution i on i.code = q.institution_code "
               "where i.region_code like '$region%' and q.period = '$period' group by 1 order by 1")

OPEN_SQL = ("select count(*) filter (where q.status in ('open', 'answered')) as \"未结质疑\" "
            "from quality_query q join known_institution i on i.code = q.institution_code "
            "where i.region_code like '$region%'")
OVERDUE_SQL = ("select count(*) as \"逾期上报\" from quality_query q join known_institution i "
               "on i.code = q.institution_code where i.region_code like '$region%' and q.status = 'open' "
               "and q.due_on < (now() at time zone 'Asia/Shanghai')::date")


def _target(sql: str) -> list[dict[str, Any]]:
    return [{"refId": "A", "datasource": QPG, "format": "table", "rawQuery": True, "editorMode": "code",
             "rawSql": sql}]


def _stat(pid: int, title: str, sql: str, x: int) -> dict[str, Any]:
    return {"id": pid, "type": "stat", "title": title, "datasource": QPG, "gridPos": {"x": x, "y": 0, "w": 12, "h": 4},
            "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": ""}, "colorMode": "value",
                        "graphMode": "none"}, "targets": _target(sql)}


def _table(pid: int, title: str, sql: str, y: int, link: str = "") -> dict[str, Any]:
    links = [{"title": "下钻 drill down", "url": link}] if link else []
    return {"id": pid, "type": "table", "title": title, "datasource": QPG, "gridPos": {"x": 0, "y": y, "w": 24, "h": 9},
            "fieldConfig": {"defaults": {"links": links}, "overrides": []}, "targets": _target(sql)}


def quality() -> dict[str, Any]:
    panels = [
        _stat(1, "未结质疑 Open queries", OPEN_SQL, 0),
        _stat(2, "逾期上报 Escalated (overdue) queries", OVERDUE_SQL, 12),
        _table(3, "机构排名 Institutions by open queries per 100 records", BY_INSTITUTION_SQL, 4),
        _table(4, "乡镇排名 Townships by open queries per 100 records (click to drill down)", BY_TOWNSHIP_SQL, 13,
               "/d/mch-quality?var-region=${__data.fields[\"乡镇\"]}&var-period=${period}"),
        _table(5, "按规则 Queries by rule", BY_RULE_SQL, 22),
    ]
    variables = [
        {"name": "region", "label": "地区 region", "type": "query", "datasource": QPG, "query": REGION_VAR,
         "definition": REGION_VAR, "refresh": 2, "sort": 0, "includeAll": False, "multi": False},
        {"name": "period", "label": "月份 month", "type": "query", "datasource": QPG, "query": PERIOD_VAR,
         "definition": PERIOD_VAR, "refresh": 2, "sort": 0, "includeAll": False, "multi": False},
    ]
    return {"uid": "mch-quality", "title": "数据质控 Data quality", "tags": ["mch"], "timezone": "Asia/Shanghai",
            "schemaVersion": 39, "version": 1, "refresh": "1m", "time": {"from": "now-2y", "to": "now"},
            "templating": {"list": variables}, "panels": panels,
            "links": [{"type": "dashboards", "tags": ["mch"], "asDropdown": True, "title": "MCH"}]}
