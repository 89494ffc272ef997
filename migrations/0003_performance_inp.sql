-- INP replaced FID as a Core Web Vital in March 2024; the guide predates it.
ALTER TABLE performance_metrics ADD COLUMN inp DOUBLE;
