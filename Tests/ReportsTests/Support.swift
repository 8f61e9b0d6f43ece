// ReportsTests use the synthetic run writer and naive statistics of Tests/SyntheticRuns.
@_exported import SyntheticRuns
