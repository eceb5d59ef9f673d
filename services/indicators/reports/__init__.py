"""The annual report (年度统计表): the year's indicators laid out like the bureau's summary tables."""
