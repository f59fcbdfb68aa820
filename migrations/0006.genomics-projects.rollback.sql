DROP TABLE IF EXISTS genomics_projects;
