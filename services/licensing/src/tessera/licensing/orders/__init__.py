"""Orders: what billing told licensing (paid, refunded, disputed, dispute closed), kept as
facts so events applied in any order give the same licenses."""
