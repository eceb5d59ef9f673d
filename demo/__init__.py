"""The demo county generator (示范县): a year of realistic MCH records posted through the real APIs."""
