"""Passes on the eshkol dialect: one file per pass, registered in ``registry``."""
