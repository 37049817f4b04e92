/* The configuration libei's sources expect from the configure step of an
 * OTP build, for building them on their own (tools/libei.mk): a 64-bit (or
 * 32-bit) glibc Linux, threads on, as Debian builds libei. Only what the
 * sources test is set; the values come from the compiler where it knows
 * them. */
#ifndef RC_LIBEI_CONFIG_H
#define RC_LIBEI_CONFIG_H

#define SIZEOF_INT __SIZEOF_INT__
#define SIZEOF_LONG __SIZEOF_LONG__
#define SIZEOF_LONG_LONG __SIZEOF_LONG_LONG__
#define SIZEOF_VOID_P __SIZEOF_POINTER__
#if __SIZEOF_LONG__ == 8
#define EI_64BIT 1
#endif

#define HAVE_SOCKLEN_T 1
#define HAVE_PTHREAD_H 1
#define HAVE_SYS_TIME_H 1
#define HAVE_SYS_SELECT_H 1
#define HAVE_SYS_UIO_H 1
#define HAVE_WRITEV 1
#define HAVE_SYSCONF 1
#define HAVE_GETHOSTBYNAME_R 1
#define HAVE_ISFINITE 1

/* The __atomic builtins, by operand size in bytes (a bit mask, as the
 * runtime's own configure reports them): 4 and 8. */
#define ETHR_HAVE___atomic_compare_exchange_n 12
#define ETHR_HAVE___atomic_load_n 12
#define ETHR_HAVE___atomic_store_n 12

/* Left out on purpose: HAVE_UNALIGNED_WORD_ACCESS (an atom's ASCII fast
 * path reading unaligned words, which UBSan's alignment check reports; the
 * byte loop used instead reads the same bytes) and HAVE_GMP_H/HAVE_LIBGMP
 * (bignums through GMP; the node does not use them). */

#endif
