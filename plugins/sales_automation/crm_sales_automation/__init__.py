"""Sales force automation for crmcore: leads, pipelines, opportunities, activities, forecasts."""
