-- Session state as a mysqldump header leaves it: it must not reach the first test.
/*!40014 SET FOREIGN_KEY_CHECKS = 0 */;
SET @vq_setup = 1;
