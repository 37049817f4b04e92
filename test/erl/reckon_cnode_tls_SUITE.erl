%%% @doc TLS distribution: the C node with `--tls-*' flags in a cluster of
%%% BEAM nodes started with `-proto_dist inet_tls -ssl_dist_optfile F'.
%%%
%%% The suite makes its own PKI in priv_dir with the `openssl' command: a CA,
%%% a certificate for every node of the cluster (named for this host, so a
%%% BEAM client's name check passes), an expired one from the same CA, and a
%%% second CA with a certificate of its own (a node from another cluster).
%%% The CT node itself speaks plain TCP, so the TLS peers are controlled over
%%% their standard_io (`peer' with `connection => standard_io') and every
%%% check runs on them.
%%%
%%% Refusals are checked on both sides: the connection is not made (pang,
%%% or no connection listed) and the C node's log says why.
%%% @end
-module(reckon_cnode_tls_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-import(rc_test_lib,
        [start_cnode/3, start_peer/3, pcall/4, start_shim_on/2, wait_connected/1,
         wait_until/3, unique_name/1, host/0, cleanup/1, track/2, dist_port/1,
         open_silent/2, close_silent/1, os_threads/1, start_thread_sampler/1,
         stop_thread_sampler/1]).

-export([all/0, suite/0, groups/0,
         init_per_suite/1, end_per_suite/1,
         init_per_group/2, end_per_group/2,
         init_per_testcase/2, end_per_testcase/2]).
-export([ping_both_ways/1,
         cnode_dials_tls_peer/1,
         request_server_call/1,
         pg_both_ways/1,
         pool_and_broadcast/1,
         big_messages/1,
         other_ca_refused/1,
         dialled_host_checked/1,
         cnode_refuses_other_ca/1,
         expired_refused/1,
         name_mismatch_refused/1,
         plaintext_peer_refused/1,
         cnode_to_plaintext_node_fails/1,
         plain_cnode_refuses_tls_peer/1,
         bad_tls_flags/1,
         silent_flood_threads_bounded/1,
         shim_spawn_mode_tls/1,
         shim_spawn_mode_tls_from_optfile/1]).

-define(DELIVER, 15000).

suite() ->
    [{timetrap, {minutes, 5}}].

all() ->
    [{group, cluster}, {group, refusals}, bad_tls_flags, silent_flood_threads_bounded,
     shim_spawn_mode_tls,
     shim_spawn_mode_tls_from_optfile].

groups() ->
    [{cluster, [sequence],
      [ping_both_ways, cnode_dials_tls_peer, request_server_call, pg_both_ways,
       pool_and_broadcast, big_messages]},
     {refusals, [],
      [other_ca_refused, cnode_refuses_other_ca, expired_refused, name_mismatch_refused,
       dialled_host_checked,
       plaintext_peer_refused, cnode_to_plaintext_node_fails,
       plain_cnode_refuses_tls_peer]}].

%%%===================================================================
%%% Set-up
%%%===================================================================

init_per_suite(Config0) ->
    case os:find_executable("openssl") of
        false ->
            {fail, "the openssl command is needed to make the test certificates"};
        _ ->
            case rc_test_lib:suite_init(Config0) of
                Config when is_list(Config) -> make_pki(Config);
                Fail -> Fail
            end
    end.

end_per_suite(Config) ->
    rc_test_lib:suite_end(Config, [testcase, group, suite]).

init_per_group(cluster, Config) ->
    try
        C = start_cnode(unique_name("rcn_tls"), tls_args(Config), group),
        [P1, P2] = [start_tls_peer("rcn_tlsp", good, Config, group) || _ <- [1, 2]],
        Node = maps:get(node, C),
        [start_shim_on(P, #{cnode => Node, call_timeout => 5000}) || P <- [P1, P2]],
        [wait_connected(P) || P <- [P1, P2]],
        [{cnode, C}, {peers, [P1, P2]} | Config]
    catch
        Class:Reason:Stack ->
            cleanup([group]),
            erlang:raise(Class, Reason, Stack)
    end;
init_per_group(_, Config) ->
    Config.

end_per_group(_, _Config) ->
    cleanup([testcase, group]),
    ok.

init_per_testcase(_Case, Config) ->
    Config.

end_per_testcase(_Case, _Config) ->
    cleanup([testcase]),
    ok.

%%%===================================================================
%%% A TLS cluster
%%%===================================================================

%% BEAM -> C node and, through the connection the BEAM made, C node -> BEAM.
ping_both_ways(Config) ->
    #{node := CNode} = C = ?config(cnode, Config),
    [P1, P2] = ?config(peers, Config),
    [?assertEqual(pong, pcall(P, net_adm, ping, [CNode])) || P <- [P1, P2]],
    ?assert(lists:member(CNode, pcall(P1, erlang, nodes, [hidden]))),
    %% the connection is TLS on the C node's side too
    await_log(C, <<"inbound, TLSv1.">>),
    ok.

%% The C node makes the connection: a second TLS C node seeded with a peer.
cnode_dials_tls_peer(Config) ->
    [#{node := P1Node} = P1 | _] = ?config(peers, Config),
    #{node := C2} = C = start_cnode(unique_name("rcn_tls_dial"),
                                    ["--seed", atom_to_list(P1Node) | tls_args(Config)],
                                    testcase),
    wait_until(fun() -> lists:member(C2, pcall(P1, erlang, nodes, [hidden])) end,
               15000, {peer_sees_cnode, C2}),
    await_log(C, <<"outbound, TLSv1.">>),
    ok.

%% A gen_server call into the C node's request server, over TLS.
request_server_call(Config) ->
    #{node := CNode} = ?config(cnode, Config),
    [P1 | _] = ?config(peers, Config),
    Call = fun(Req) -> pcall(P1, gen_server, call, [{reckon_cnode, CNode}, Req, 5000]) end,
    ?assertEqual({ok, pong}, Call(ping)),
    ?assertEqual({ok, <<"s:b">>}, Call({topic, s, <<"b">>})),
    ?assertEqual(<<"s:b">>, pcall(P1, reckon_cnode_emitter_group, topic, [s, <<"b">>])),
    ok.

%% pg over TLS, both ways: a BEAM process joined on P1 is seen by the C
%% node's scope; a C process joined through P1's shim is seen by P2's pg.
pg_both_ways(Config) ->
    #{node := CNode} = ?config(cnode, Config),
    [P1, P2] = ?config(peers, Config),
    Raw = fun(Req) -> pcall(P1, gen_server, call, [{reckon_cnode, CNode}, Req, 5000]) end,
    S = tls_pg,
    Sub = list_to_binary(unique_name("sub")),
    G = {S, Sub, emitters},
    L1 = pcall(P1, rc_test_emitter, start_recorder, []),
    {ok, [C1]} = Raw({spawn_idle, 1}),
    ?assertEqual([{ok, ok}], hd(pcall(P1, rc_test_lib, run_calls, [[{join, [S, Sub, [L1, C1]]}], 1]))),
    wait_until(fun() -> sorted(Raw({members, S, Sub})) =:= {ok, lists:sort([L1, C1])} end,
               10000, cnode_sees_beam_member),
    %% P2 is not connected to P1 (-connect_all false): what it sees of the
    %% group comes from the C node
    wait_until(fun() -> pcall(P2, pg, get_members, [reckon_db_pg, G]) =:= [C1] end,
               10000, p2_sees_c_member),
    ?assertEqual([{ok, ok}], hd(pcall(P1, rc_test_lib, run_calls, [[{leave, [S, Sub, [L1, C1]]}], 1]))),
    wait_until(fun() -> pcall(P2, pg, get_members, [reckon_db_pg, G]) =:= [] end,
               10000, p2_sees_leave),
    wait_until(fun() -> Raw({members, S, Sub}) =:= {ok, []} end, 10000, cnode_sees_leave),
    ?assertEqual({ok, ok}, Raw({exit_process, C1, normal})),
    ok.

%% A C emitter pool whose subscriber is on P2; broadcasts from P1 through
%% the shim and through the C node: P1 -> C node -> P2, all over TLS.
pool_and_broadcast(Config) ->
    [P1, P2] = ?config(peers, Config),
    S = tls_pool,
    Sub = list_to_binary(unique_name("sub")),
    Rec = pcall(P2, rc_test_emitter, start_recorder, []),
    {ok, Pids} = pcall(P1, reckon_cnode, start_emitter_pool, [S, Sub, 3, Rec]),
    ?assertEqual(3, length(Pids)),
    wait_until(fun() -> length(pcall(P1, reckon_cnode_emitter_group, retrieve_emitters, [S, Sub])) =:= 3 end,
               10000, pool_visible),
    Evs = [{ev, I, crypto:strong_rand_bytes(I rem 50)} || I <- lists:seq(1, 200)],
    {Res, _} = pcall(P1, rc_test_emitter, broadcast_many, [shim, S, Sub, Evs, false]),
    ?assertEqual([ok], lists:usort(Res)),
    Evs2 = [{ev2, I} || I <- lists:seq(1, 100)],
    {Res2, _} = pcall(P1, rc_test_emitter, broadcast_many, [cnode, S, Sub, Evs2, false]),
    ?assertEqual([ok], lists:usort(Res2)),
    Got = await_events(P2, Rec, 300),
    ?assertEqual(lists:sort(Evs ++ Evs2), lists:sort(Got)),
    ?assertEqual(ok, pcall(P1, reckon_cnode, stop_emitter_pool, [S, Sub])),
    ok.

%% Frames far bigger than a TLS record (16 kB), both ways: the C node's
%% partial writes and reads of many records per frame.
big_messages(Config) ->
    #{node := CNode} = ?config(cnode, Config),
    [P1, P2] = ?config(peers, Config),
    S = tls_big,
    Sub = list_to_binary(unique_name("sub")),
    Rec = pcall(P2, rc_test_emitter, start_recorder, []),
    {ok, [_]} = pcall(P1, reckon_cnode, start_emitter_pool, [S, Sub, 1, Rec]),
    Evs = [{big, I, crypto:strong_rand_bytes(I * 300000)} || I <- lists:seq(1, 8)],
    {Res, _} = pcall(P1, rc_test_emitter, broadcast_many, [shim, S, Sub, Evs, false]),
    ?assertEqual([ok], lists:usort(Res)),
    Got = await_events(P2, Rec, length(Evs)),
    ?assertEqual(lists:sort(Evs), lists:sort(Got)),
    ?assertEqual({ok, pong},
                 pcall(P1, gen_server, call, [{reckon_cnode, CNode}, ping, 5000])),
    ?assertEqual(ok, pcall(P1, reckon_cnode, stop_emitter_pool, [S, Sub])),
    ok.

%%%===================================================================
%%% Refusals
%%%===================================================================

%% A BEAM node with a certificate from another CA: no connection, and the
%% C node logs the TLS alert (the BEAM, as client, refuses our certificate
%% before it shows its own).
other_ca_refused(Config) ->
    C = start_cnode(unique_name("rcn_tls_oca"), tls_args(Config), testcase),
    P = start_tls_peer("rcn_other", other, Config, testcase),
    ?assertEqual(pang, pcall(P, net_adm, ping, [maps:get(node, C)])),
    await_log(C, <<"inbound handshake failed: TLS: tlsv1 alert unknown ca">>),
    ok.

%% The C node dials a node whose certificate is from another CA and says so.
cnode_refuses_other_ca(Config) ->
    #{node := PNode} = P = start_tls_peer("rcn_other", other, Config, testcase),
    C = start_cnode(unique_name("rcn_tls_oca2"),
                    ["--seed", atom_to_list(PNode) | tls_args(Config)], testcase),
    await_log(C, <<"refused: unknown CA: not issued by a CA in --tls-cacert">>),
    ?assertEqual([], pcall(P, erlang, nodes, [hidden])),
    ok.

%% A node presenting an expired certificate (from the right CA).
expired_refused(Config) ->
    #{node := PNode} = P = start_tls_peer("rcn_expired", expired, Config, testcase),
    C = start_cnode(unique_name("rcn_tls_exp"),
                    ["--seed", atom_to_list(PNode) | tls_args(Config)], testcase),
    await_log(C, <<"refused: expired">>),
    ?assertEqual([], pcall(P, erlang, nodes, [hidden])),
    ok.

%% --tls-server-name: a server certificate not issued for that name.
name_mismatch_refused(Config) ->
    [#{node := PNode}] = [start_tls_peer("rcn_name", good, Config, testcase)],
    C = start_cnode(unique_name("rcn_tls_name"),
                    ["--seed", atom_to_list(PNode), "--tls-server-name", "not-this.example"
                     | tls_args(Config)], testcase),
    await_log(C, <<"refused: name mismatch">>),
    ok.

%% Without --tls-server-name the C node checks the certificate of the node
%% it dials against that node's host, as OTP's inet_tls_dist client does: a
%% certificate the cluster's CA issued for other.example is refused for
%% ...@<this host> (it used to be accepted); --tls-server-name other.example
%% accepts it.
dialled_host_checked(Config) ->
    P = start_tls_peer("rcn_elsewhere", elsewhere, Config, testcase),
    PNode = pcall(P, erlang, node, []),
    C = start_cnode(unique_name("rcn_tls_host"), ["--seed", atom_to_list(PNode)
                                                  | tls_args(Config)], testcase),
    await_log(C, <<"refused: name mismatch: not issued for the host of the node dialled">>),
    ?assertEqual([], pcall(P, erlang, nodes, [hidden])),
    C2 = start_cnode(unique_name("rcn_tls_host2"),
                     ["--seed", atom_to_list(PNode), "--tls-server-name", "other.example"
                      | tls_args(Config)], testcase),
    wait_until(fun() -> lists:member(maps:get(node, C2), pcall(P, erlang, nodes, [hidden])) end,
               20000, override_accepted),
    ok.

%% A node without TLS distribution knocking on the TLS port.
plaintext_peer_refused(Config) ->
    C = start_cnode(unique_name("rcn_tls_pl"), tls_args(Config), testcase),
    P = start_peer("rcn_plain", #{connection => standard_io}, testcase),
    ?assertEqual(pang, pcall(P, net_adm, ping, [maps:get(node, C)])),
    await_log(C, <<"the peer sent plaintext">>),
    ok.

%% The reverse: the TLS C node dials a plain node (this CT node), which
%% waits for more of what it takes for a handshake message.
cnode_to_plaintext_node_fails(Config) ->
    C = start_cnode(unique_name("rcn_tls_toplain"),
                    ["--seed", atom_to_list(node()) | tls_args(Config)], testcase),
    await_log(C, <<"no answer to our client hello">>),
    ?assertNot(lists:member(maps:get(node, C), nodes(hidden))),
    ok.

%% A C node without TLS, dialled by a TLS node: refused at once, with why.
plain_cnode_refuses_tls_peer(Config) ->
    C = start_cnode(unique_name("rcn_plain_c"), [], testcase),
    P = start_tls_peer("rcn_tlsp", good, Config, testcase),
    ?assertEqual(pang, pcall(P, net_adm, ping, [maps:get(node, C)])),
    await_log(C, <<"the peer speaks TLS">>),
    ok.

%% 1,000 strangers that open a connection to the TLS port and never send a
%% client hello: the node's threads stay within the handshake cap (128) and
%% a few (they used to grow with the strangers: 1,006 threads, RSS 13 -> 134
%% MB), and a TLS node's handshake completes meanwhile.
silent_flood_threads_bounded(Config) ->
    C = #{node := CNode, os_pid := OsPid} =
        start_cnode(unique_name("rcn_tls_flood"), tls_args(Config), testcase),
    Base = os_threads(OsPid),
    Rss0 = rss_kb(OsPid),
    Sampler = start_thread_sampler(OsPid),
    {Silent, Opened} = open_silent(dist_port(C), 1000),
    try
        P = start_tls_peer("rcn_tls_legit", good, Config, testcase),
        Result = pcall(P, net_adm, ping, [CNode]),
        Most = stop_thread_sampler(Sampler),
        ct:log("~p silent strangers on the TLS port: threads ~p before, ~p at most; RSS ~p -> ~p "
               "kB; a TLS node's ping: ~p", [Opened, Base, Most, Rss0, rss_kb(OsPid), Result]),
        ?assertEqual(1000, Opened),
        ?assertEqual(pong, Result),
        %% inbound handshakes (128) and outbound dials (16) at most, and a few
        ?assert(Most =< Base + 128 + 16 + 8)
    after
        close_silent(Silent)
    end,
    ok.

rss_kb(OsPid) ->
    {ok, Status} = file:read_file("/proc/" ++ integer_to_list(OsPid) ++ "/status"),
    {match, [N]} = re:run(Status, <<"VmRSS:\\s+(\\d+)">>, [{capture, all_but_first, binary}]),
    binary_to_integer(N).

%% Start-up errors name the file or the flag.
bad_tls_flags(Config) ->
    {ok, Bin} = rc_test_lib:cnode_bin(),
    Dir = ?config(pki, Config),
    Run = fun(Args) ->
                  Quoted = [[" '", A, "'"] || A <- Args],
                  os:cmd(lists:flatten([Bin, " --sname ", unique_name("rcn_bad"),
                                        " --cookie x", Quoted, " 2>&1; echo rc=$?"]))
          end,
    Out1 = Run(["--tls-cert", filename:join(Dir, "missing.pem"),
                "--tls-cacert", filename:join(Dir, "ca.pem")]),
    ?assertMatch({match, _}, re:run(Out1, "TLS certificate file .*missing.pem: No such file or directory")),
    ?assertMatch({match, _}, re:run(Out1, "rc=1")),
    Out2 = Run(["--tls-cacert", filename:join(Dir, "ca.pem")]),
    ?assertMatch({match, _}, re:run(Out2, "need --tls-cert")),
    Out3 = Run(["--tls-cert", filename:join(Dir, "node.pem"), "--tls-min-version", "1.1"]),
    ?assertMatch({match, _}, re:run(Out3, "bad --tls-min-version")),
    Out4 = Run(["--tls-cert", filename:join(Dir, "node.pem"),
                "--tls-key", filename:join(Dir, "other.key"),
                "--tls-cacert", filename:join(Dir, "ca.pem")]),
    ?assertMatch({match, _}, re:run(Out4, "TLS private key file .*other.key: not the key of the certificate in .*node.pem")),
    Out5 = Run(["--tls-cert", filename:join(Dir, "node.pem")]),
    ?assertMatch({match, _}, re:run(Out5, "needs --tls-cacert")),
    ok.

%% The shim's spawn mode passes its `tls' env to the C node it starts: a
%% TLS peer spawns its C node and talks to it.
shim_spawn_mode_tls(Config) ->
    Dir = ?config(pki, Config),
    P = start_tls_peer("rcn_tls_sp", good, Config, testcase),
    Tls = #{certfile => filename:join(Dir, "node.pem"),
            keyfile => filename:join(Dir, "node.key"),
            cacertfile => filename:join(Dir, "ca.pem"),
            verify => verify_peer,
            versions => ['tlsv1.2', 'tlsv1.3']},
    start_shim_on(P, #{spawn => true, spawn_name => unique_name("rcn_tls_spawned"),
                       call_timeout => 5000, tls => Tls}),
    wait_connected(P),
    #{os_pid := OsPid} = pcall(P, reckon_cnode, status, []),
    track(testcase, {os_pid, OsPid}),
    {ok, CmdLine} = file:read_file("/proc/" ++ integer_to_list(OsPid) ++ "/cmdline"),
    ?assertNotEqual(nomatch, binary:match(CmdLine, <<"--tls-cert">>)),
    ?assertEqual(<<"s:x">>, pcall(P, reckon_cnode_emitter_group, topic, [s, <<"x">>])),
    ok = pcall(P, application, stop, [reckon_cnode]),
    ok.

%% `{tls, dist}': the spawned C node takes its certificate, key, CA and
%% verify from the node's own -ssl_dist_optfile.
shim_spawn_mode_tls_from_optfile(Config) ->
    Dir = ?config(pki, Config),
    P = start_tls_peer("rcn_tls_spd", good, Config, testcase),
    start_shim_on(P, #{spawn => true, spawn_name => unique_name("rcn_tls_spawned"),
                       call_timeout => 5000, tls => dist}),
    wait_connected(P),
    #{os_pid := OsPid} = pcall(P, reckon_cnode, status, []),
    track(testcase, {os_pid, OsPid}),
    {ok, CmdLine} = file:read_file("/proc/" ++ integer_to_list(OsPid) ++ "/cmdline"),
    Args = binary:split(CmdLine, <<0>>, [global]),
    ?assert(lists:member(list_to_binary(filename:join(Dir, "node.pem")), Args)),
    ?assert(lists:member(list_to_binary(filename:join(Dir, "ca.pem")), Args)),
    ?assertEqual({ok, pong},
                 pcall(P, gen_server, call, [{reckon_cnode, pcall(P, reckon_cnode, node, [])},
                                             ping, 5000])),
    ok = pcall(P, application, stop, [reckon_cnode]),
    ok.

%%%===================================================================
%%% Helpers
%%%===================================================================

tls_args(Config) ->
    Dir = ?config(pki, Config),
    ["--tls-cert", filename:join(Dir, "node.pem"),
     "--tls-key", filename:join(Dir, "node.key"),
     "--tls-cacert", filename:join(Dir, "ca.pem")].

%% A BEAM node with TLS distribution, controlled over standard_io (the CT
%% node cannot reach it: it speaks plain TCP).
start_tls_peer(Prefix, Which, Config, Scope) ->
    Opt = filename:join(?config(pki, Config), atom_to_list(Which) ++ ".conf"),
    start_peer(Prefix, #{connection => standard_io,
                         args => ["-proto_dist", "inet_tls", "-ssl_dist_optfile", Opt,
                                  "-connect_all", "false"]},
               Scope).

await_log(#{log := Log}, Pattern) ->
    wait_until(fun() ->
                       case file:read_file(Log) of
                           {ok, B} -> binary:match(B, Pattern) =/= nomatch;
                           _ -> false
                       end
               end, 20000, {log, Log, Pattern}).

await_events(P, Rec, N) ->
    ok = pcall(P, rc_test_emitter, recorder_await, [Rec, N, ?DELIVER]),
    Msgs = pcall(P, rc_test_emitter, recorder_take, [Rec]),
    [E || {_, {events, Es}} <- Msgs, E <- Es].

sorted({ok, L}) when is_list(L) -> {ok, lists:sort(L)};
sorted(Other) -> Other.

%% The PKI: ca (the cluster's CA), node (every node's certificate, for this
%% host), expired (same CA, no longer valid), other (another CA's), and an
%% ssl_dist optfile for each certificate.
make_pki(Config) ->
    Dir = filename:join(?config(priv_dir, Config), "pki"),
    ok = filelib:ensure_path(Dir),
    Host = host(),
    Ext = filename:join(Dir, "ext.cnf"),
    ok = file:write_file(Ext, ["subjectAltName=DNS:", Host, ",DNS:localhost,IP:127.0.0.1\n",
                               "extendedKeyUsage=serverAuth,clientAuth\n"]),
    Sh = fun(Cmd) ->
                 Out = os:cmd("cd '" ++ Dir ++ "' && " ++ Cmd ++ " 2>&1; echo \"rc=$?\""),
                 case string:find(Out, "rc=0") of
                     nomatch -> ct:fail({openssl_failed, Cmd, Out});
                     _ -> ok
                 end
         end,
    CA = fun(Name, CN) ->
                 Sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout " ++ Name ++ ".key -out "
                    ++ Name ++ ".pem -days 2 -subj /CN=" ++ CN)
         end,
    Cert = fun(Name, CaName, Days) when is_list(Days) ->
                   Sh("openssl req -newkey rsa:2048 -nodes -keyout " ++ Name ++ ".key -out "
                      ++ Name ++ ".csr -subj /CN=" ++ Name),
                   Sh("openssl x509 -req -in " ++ Name ++ ".csr -CA " ++ CaName ++ ".pem -CAkey "
                      ++ CaName ++ ".key -CAcreateserial -out " ++ Name ++ ".pem -days "
                      ++ Days ++ " -extfile ext.cnf")
           end,
    CA("ca", "reckon-test-ca"),
    CA("ca2", "another-ca"),
    Cert("node", "ca", "2"),
    Cert("other", "ca2", "2"),
    %% the cluster's CA, but for another host only
    ok = file:write_file(filename:join(Dir, "elsewhere.cnf"),
                         ["subjectAltName=DNS:other.example\n",
                          "extendedKeyUsage=serverAuth,clientAuth\n"]),
    Sh("openssl req -newkey rsa:2048 -nodes -keyout elsewhere.key -out elsewhere.csr "
       "-subj /CN=elsewhere"),
    Sh("openssl x509 -req -in elsewhere.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
       "-out elsewhere.pem -days 2 -extfile elsewhere.cnf"),
    %% `openssl ca' takes explicit dates on every OpenSSL 3 (x509 -days -1
    %% works on 3.0 only)
    ok = file:write_file(filename:join(Dir, "ca.cnf"),
                         "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\n"
                         "new_certs_dir = .\nserial = serial\ndefault_md = sha256\n"
                         "policy = p\n[p]\ncommonName = supplied\n"),
    Sh("touch index.txt && echo 01 > serial"),
    Sh("openssl req -newkey rsa:2048 -nodes -keyout expired.key -out expired.csr "
       "-subj /CN=expired"),
    Sh("openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -in expired.csr "
       "-out expired.pem -startdate 20200101000000Z -enddate 20200102000000Z "
       "-extfile ext.cnf -notext"),
    [write_optfile(Dir, Name, Ca) ||
        {Name, Ca} <- [{"good", "ca"}, {"expired", "ca"}, {"other", "ca2"},
                       {"elsewhere", "ca"}]],
    [{pki, Dir} | Config].

write_optfile(Dir, Name, Ca) ->
    CertName = case Name of "good" -> "node"; _ -> Name end,
    F = fun(File) -> filename:join(Dir, File) end,
    Common = [{certfile, F(CertName ++ ".pem")}, {keyfile, F(CertName ++ ".key")},
              {cacertfile, F(Ca ++ ".pem")}, {verify, verify_peer},
              {secure_renegotiate, true}],
    Opts = [{server, [{fail_if_no_peer_cert, true} | Common]}, {client, Common}],
    ok = file:write_file(F(Name ++ ".conf"), io_lib:format("~p.~n", [Opts])).
