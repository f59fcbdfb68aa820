DROP TABLE IF EXISTS qac_apply_outputs;
DROP TABLE IF EXISTS qac_models;
