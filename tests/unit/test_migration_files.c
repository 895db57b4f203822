/* db/migration_files: loading the migration files, their order and checksums. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../db/migration_files.h"

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void migrations_load_in_numeric_order_with_checksums(void **state)
{
    (void)state;
    char dir[] = "/tmp/wattline-mig-XXXXXX";
    assert_non_null(mkdtemp(dir));
    write_file(dir, "10_later.sql", "SELECT 10;");
    write_file(dir, "2_second.sql", "SELECT 2;");
    write_file(dir, "0001_first.sql", "SELECT 1;");
    write_file(dir, "README.md", "not a migration");
    struct migration_set set;
    char err[256];
    assert_true(migrations_load(dir, &set, err, sizeof err));
    assert_int_equal(set.count, 3);
    assert_int_equal(set.items[0].version, 1);
    assert_int_equal(set.items[1].version, 2);
    assert_int_equal(set.items[2].version, 10);
    /* SHA-256 of "SELECT 1;" */
    assert_string_equal(set.items[0].checksum,
                        "17db4fd369edb9244b9f91d9aeed145c3d04ad8ba6e95d06247f07a63527d11a");
    char first_sum[65];
    memcpy(first_sum, set.items[0].checksum, sizeof first_sum);
    migrations_free(&set);

    /* A changed file changes its checksum. */
    write_file(dir, "0001_first.sql", "SELECT 1 ;");
    assert_true(migrations_load(dir, &set, err, sizeof err));
    assert_string_not_equal(set.items[0].checksum, first_sum);
    migrations_free(&set);

    /* Two files with one version are refused. */
    write_file(dir, "0002_again.sql", "SELECT 2;");
    assert_false(migrations_load(dir, &set, err, sizeof err));
    assert_non_null(strstr(err, "share version 2"));

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void migration_names_are_parsed_strictly(void **state)
{
    (void)state;
    long v;
    assert_true(migrations_parse_name("0003_devices.sql", &v));
    assert_int_equal(v, 3);
    assert_false(migrations_parse_name("devices.sql", &v));
    assert_false(migrations_parse_name("0003devices.sql", &v));
    assert_false(migrations_parse_name("0003_devices.sql.bak", &v));
    assert_false(migrations_parse_name("0003_.sq", &v));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(migrations_load_in_numeric_order_with_checksums),
        cmocka_unit_test(migration_names_are_parsed_strictly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
