#!/usr/bin/perl
# A minimal cncf worker in Perl, written from docs/wire-protocol.md alone: it
# speaks the wire protocol on the pipes named by CNCF_FD_REQUESTS and
# CNCF_FD_REPLIES and hosts one component with three operations.  It does not
# open the control pipe (so a cancellation is forced after the grace period).
# Core Perl only (JSON::PP ships with perl).
use strict;
use warnings;
use JSON::PP;

$| = 1;                                # stdout goes to a capture file: flush every print,
select(STDERR); $| = 1; select(STDOUT); # or the text reaches the hub late or never

my %KIND = (HELLO => 1, LOAD => 2, LOADED => 3, NEW => 4, INVOKE => 5, UNLOAD => 7,
            RESULT => 8, PING => 9, SHUTDOWN => 10);
my $json = JSON::PP->new->utf8->canonical->allow_nonref;
open(my $in, '<&=', $ENV{CNCF_FD_REQUESTS} // 3) or die "requests fd: $!";
open(my $out, '>&=', $ENV{CNCF_FD_REPLIES} // 4) or die "replies fd: $!";
binmode($in); binmode($out);

sub send_frame {
    my ($kind, $body) = @_;
    my $data = $json->encode($body);
    my $frame = pack('N C', length($data), $kind) . $data;
    my $off = 0;
    while ($off < length($frame)) {
        my $n = syswrite($out, $frame, length($frame) - $off, $off) // die "write: $!";
        $off += $n;
    }
}

sub read_exact {
    my ($n) = @_;
    my $buf = '';
    while (length($buf) < $n) {
        my $got = sysread($in, $buf, $n - length($buf), length($buf));
        return undef unless $got;      # EOF: the hub is gone
    }
    return $buf;
}

my %ops = (
    greet => sub { my ($name) = @_; print "greeting $name\n"; return "hello, $name" },
    add   => sub { my $sum = 0; $sum += $_ for @_; return $sum },
    fail  => sub { die "perl says no\n" },
);
my @operations = map { { name => $_, params => undef, doc => '' } } sort keys %ops;

send_frame($KIND{HELLO}, { protocol => 1, runtime => "perl-$^V", pid => $$ });
while (defined(my $head = read_exact(5))) {
    my ($length, $kind) = unpack('N C', $head);
    my $body = $json->decode(read_exact($length) // last);
    my $id = $body->{id};
    if ($kind == $KIND{LOAD}) {
        send_frame($KIND{LOADED}, { id => $id, ok => JSON::PP::true, operations => \@operations });
    } elsif ($kind == $KIND{NEW} || $kind == $KIND{UNLOAD} || $kind == $KIND{PING}) {
        send_frame($KIND{RESULT}, { id => $id, ok => JSON::PP::true, value => undef });
    } elsif ($kind == $KIND{INVOKE}) {
        my $op = $ops{$body->{operation}};
        my $value = eval { $op->(@{ $body->{args} || [] }) };
        if ($@) {
            (my $msg = $@) =~ s/\s+$//;
            send_frame($KIND{RESULT}, { id => $id, ok => JSON::PP::false, failure => {
                code => 'raised', message => $msg, attributes => {},
                cause => { type => 'die', message => $msg, stack => '' } } });
        } else {
            send_frame($KIND{RESULT}, { id => $id, ok => JSON::PP::true, value => $value });
        }
    } elsif ($kind == $KIND{SHUTDOWN}) {
        exit 0;
    }
}
exit 0;
