/* udpflood - send N small UDP datagrams as fast as possible and print the
 * rate (packets/s). Used by tests/bench/sessions.sh to measure the per-packet
 * cost of pathman's marking rules without an interpreter's cost in the way.
 * Usage: udpflood ADDR PORT [N]   (IPv4; N defaults to 500000) */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s ADDR PORT [N]\n", argv[0]);
        return 2;
    }
    long n = argc > 3 ? atol(argv[3]) : 500000;
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
    if (inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1) {
        fprintf(stderr, "bad address %s\n", argv[1]);
        return 2;
    }
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    if (s < 0) {
        perror("socket");
        return 1;
    }
    char payload[16] = {0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long sent = 0;
    for (long i = 0; i < n; i++) {
        /* Unconnected sendto: every packet goes through routing and the
         * output hooks, as an application's would. */
        if (sendto(s, payload, sizeof payload, 0, (struct sockaddr *)&dst, sizeof dst) > 0)
            sent++;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("%ld\n", (long)(sent / secs));
    close(s);
    return 0;
}
