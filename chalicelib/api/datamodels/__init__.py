"""Request and response models in the field names, types and enums of Airflow 3's
REST API v2, so that ``apache-airflow-client``'s strict models accept them."""
